from aiogram.fsm.state import State, StatesGroup


class MyTickets(StatesGroup):
    # "Replying to #N": the merchant's next message (text, files, an album) goes to the ticket.
    replying = State()
