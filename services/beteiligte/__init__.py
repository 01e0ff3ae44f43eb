"""CBeteiligte (EspoCRM) ⇄ Beteiligter (Advoware): models, field map, normalisation, mapper.

Pure code: no I/O, no Motia import. Import the submodules you need
(``from services.beteiligte import mapper``); this package imports nothing eagerly.
"""
