from tests.zoho_fixtures import zoho_sandbox, zoho_settings  # noqa: F401
