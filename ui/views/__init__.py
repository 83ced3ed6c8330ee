"""Widgets and page sections: each draws one part of a page from the session and the library."""
