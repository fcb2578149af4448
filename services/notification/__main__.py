"""`python -m services.notification`: run the notification service until SIGTERM."""

from __future__ import annotations

from services.notification.app import create_app
from services.notification.settings import NotificationSettings
from shared.logging import configure_logging
from shared.runtime import serve


def main() -> None:
    settings = NotificationSettings()  # secrets come from the environment
    configure_logging("notification", settings.log_level, settings.log_format)
    serve(create_app(settings), settings.http_host, settings.http_port)


if __name__ == "__main__":
    main()
