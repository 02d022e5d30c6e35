from shared.serve import serve
from services.console.app import DEFAULT_PORT, create_app

serve(create_app, "console", DEFAULT_PORT)
