from shared.serve import serve
from services.documents.app import DEFAULT_PORT, create_app

serve(create_app, "documents", DEFAULT_PORT)
