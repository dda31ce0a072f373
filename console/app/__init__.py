"""The Textual console (`specdeck tui`): the only package under console/ that imports Textual."""
