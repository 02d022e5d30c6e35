from services.documents.app import DEFAULT_PORT, create_app
from shared.serve import serve

serve(create_app, "documents", DEFAULT_PORT)
