"""The sandbox: frontdesk without Telegram (`frontdesk sandbox`, bot/sandbox/runner.py)."""
