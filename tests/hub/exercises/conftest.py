"""The SMTP sink of the notification e-mail tests, reused for exercise e-mail."""

from tests.hub.notifications.test_mail import mailing, sink, smtp_port  # noqa: F401
