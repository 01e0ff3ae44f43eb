"""Product code of the EspoCRM <-> Advoware Beteiligte sync. No Motia import lives here."""
