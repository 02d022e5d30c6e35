from shared.serve import serve
from services.intake.app import DEFAULT_PORT, create_app

serve(create_app, "intake", DEFAULT_PORT)
