"""Web UI tests: the real app in a child process, driven by Debian's chromium through Playwright."""
