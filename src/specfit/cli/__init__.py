"""The ``specfit`` command line: parses, calls the library, prints."""
