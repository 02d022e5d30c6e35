from services.console.app import DEFAULT_PORT, create_app
from shared.serve import serve

serve(create_app, "console", DEFAULT_PORT)
