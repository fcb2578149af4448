"""`python -m services.registration`: run the registration service until SIGTERM."""

from __future__ import annotations

from services.registration.app import create_app
from services.registration.settings import RegistrationSettings
from shared.runtime import run_service


def main() -> None:
    run_service("registration", RegistrationSettings(), create_app)  # secrets come from the environment


if __name__ == "__main__":
    main()
