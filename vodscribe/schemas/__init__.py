"""Request and response bodies of the API (pydantic), one module per resource; ``errors`` holds the
error bodies in Gcore's shapes, so ``/openapi.json`` describes what clients really get."""
