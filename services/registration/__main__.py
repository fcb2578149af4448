"""`python -m services.registration`: run the registration service until SIGTERM."""

from __future__ import annotations

from services.registration.app import create_app
from services.registration.settings import RegistrationSettings
from shared.logging import configure_logging
from shared.runtime import serve


def main() -> None:
    settings = RegistrationSettings()  # secrets come from the environment
    configure_logging("registration", settings.log_level, settings.log_format)
    serve(create_app(settings), settings.http_host, settings.http_port)


if __name__ == "__main__":
    main()
