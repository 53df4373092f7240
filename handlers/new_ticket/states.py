from aiogram.fsm.state import State, StatesGroup


class NewTicket(StatesGroup):
    choosing_store = State()
    choosing_type = State()
    choosing_category = State()
    entering_subject = State()
    entering_description = State()
    # After the description: photos and documents (optional), then the review.
    adding_files = State()
    reviewing = State()
    confirming_restart = State()
    # /cancel after a written description asks once before dropping it.
    confirming_cancel = State()
