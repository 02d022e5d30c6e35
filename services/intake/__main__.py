from services.intake.app import DEFAULT_PORT, create_app
from shared.serve import serve

serve(create_app, "intake", DEFAULT_PORT)
