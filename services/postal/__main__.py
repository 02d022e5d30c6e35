from services.postal.app import DEFAULT_PORT, create_app
from shared.serve import serve

serve(create_app, "postal", DEFAULT_PORT)
