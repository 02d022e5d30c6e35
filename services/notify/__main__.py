from services.notify.app import DEFAULT_PORT, create_app
from shared.serve import serve

serve(create_app, "notify", DEFAULT_PORT)
