"""Small leaf utilities: files written whole, number formatting, interrupts, process settings."""
