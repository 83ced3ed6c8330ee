"""Figure builders: tidy frames or arrays in, Plotly figures out. No Streamlit and no session
state here, so every figure can be built (and tested) outside a running app."""
