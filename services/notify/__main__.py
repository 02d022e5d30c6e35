from shared.serve import serve
from services.notify.app import DEFAULT_PORT, create_app

serve(create_app, "notify", DEFAULT_PORT)
