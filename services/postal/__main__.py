from shared.serve import serve
from services.postal.app import DEFAULT_PORT, create_app

serve(create_app, "postal", DEFAULT_PORT)
