"""Document intelligence: the engine behind text extraction (text layers,
Tesseract OCR, cleaning, language detection), page previews, classification,
field extraction and the search filter language. Plain modules without
database access; `backend.documents.service` and `backend.documents.tasks`
use them."""
