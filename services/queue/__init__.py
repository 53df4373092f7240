from services.queue.base import (
    Attachment,
    NewTicket,
    QueueComment,
    QueueError,
    QueueRejected,
    QueueTicket,
    QueueUnavailable,
    TicketNotFound,
    TicketQueue,
)

__all__ = [
    "Attachment",
    "NewTicket",
    "QueueComment",
    "QueueError",
    "QueueRejected",
    "QueueTicket",
    "QueueUnavailable",
    "TicketNotFound",
    "TicketQueue",
]
