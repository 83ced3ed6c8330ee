from bhm_core.cli import main

raise SystemExit(main())
