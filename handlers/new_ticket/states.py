from aiogram.fsm.state import State, StatesGroup


class NewTicket(StatesGroup):
    choosing_store = State()
    choosing_type = State()
    choosing_category = State()
    entering_subject = State()
    entering_description = State()
    reviewing = State()
    confirming_restart = State()
