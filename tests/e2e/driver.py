"""A merchant in a private chat with the bot: what a person does, and what they then see."""

from __future__ import annotations

from collections.abc import Callable

from bot.sandbox.telegram_emulator import ChatMessage, SimUser, TelegramEmulator


class MerchantChat:
    def __init__(self, emu: TelegramEmulator, user: SimUser, *, timeout: float = 15) -> None:
        self.emu = emu
        self.user = user
        self.timeout = timeout  # for each answer of the bot

    async def say(
        self, text: str, until: Callable[[ChatMessage], bool] | None = None
    ) -> ChatMessage:
        """Sends text; returns the bot's next new message (matching `until`)."""
        since = self.emu.mark()
        self.emu.send_text(self.user, text)
        return await self.emu.wait_for_message(self.user, until, since=since, timeout=self.timeout)

    async def press(self, message: ChatMessage, text: str) -> ChatMessage:
        """Presses a button of `message` that leads to an edit of that same message."""
        since = self.emu.mark()
        self.emu.press_button(self.user, message, text=text)
        await self.emu.wait_for_call(
            "editMessageText",
            # Message ids count per chat: the edit must be of this chat's message.
            lambda call: (
                int(call.params.get("message_id", 0)) == message.message_id
                and str(call.params.get("chat_id")) == str(self.user.chat_id)
            ),
            since=since,
            timeout=self.timeout,
        )
        return self.emu.message(self.user, message.message_id)

    async def press_for_new(
        self, message: ChatMessage, text: str, until: Callable[[ChatMessage], bool] | None = None
    ) -> ChatMessage:
        """Presses a button that makes the bot send a new message."""
        since = self.emu.mark()
        self.emu.press_button(self.user, message, text=text)
        return await self.emu.wait_for_message(self.user, until, since=since, timeout=self.timeout)

    async def press_stale(self, message: ChatMessage, callback_data: str) -> str | None:
        """Presses a button the chat no longer shows (an old client); returns the alert text."""
        query = self.emu.press_button(
            self.user, message, callback_data=callback_data, require_button=False
        )
        answer = await self.emu.wait_for_callback_answer(query, timeout=self.timeout)
        return answer.text


def containing(*fragments: str) -> Callable[[ChatMessage], bool]:
    return lambda message: all(fragment in message.content for fragment in fragments)
