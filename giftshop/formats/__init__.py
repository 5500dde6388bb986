"""Date formats per language (settings.FORMAT_MODULE_PATH), where ours differ from Django's: only English, which
writes "25 December 2026" as the site always has; every other language takes Django's own ("25. Dezember 2026",
"25 grudnia 2026"). Templates and code name the format ("DATE_FORMAT"), never its letters."""
