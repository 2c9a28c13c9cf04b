from specfit.cli.main import main

raise SystemExit(main())
