"""The sandbox: the bot, the Bot API emulator, the builtin queue and a web page, offline."""
