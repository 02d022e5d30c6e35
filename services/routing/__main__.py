from shared.serve import serve
from services.routing.app import DEFAULT_PORT, create_app

serve(create_app, "routing", DEFAULT_PORT)
