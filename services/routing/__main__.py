from services.routing.app import DEFAULT_PORT, create_app
from shared.serve import serve

serve(create_app, "routing", DEFAULT_PORT)
