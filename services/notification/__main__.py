"""`python -m services.notification`: run the notification service until SIGTERM."""

from __future__ import annotations

from services.notification.app import create_app
from services.notification.settings import NotificationSettings
from shared.runtime import run_service

if __name__ == "__main__":
    run_service("notification", NotificationSettings(), create_app)  # secrets come from the environment
