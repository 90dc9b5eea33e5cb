"""Model card templates (Jinja2 Markdown, YAML metadata in the front matter), one per family.

Installed as the package data `brain_gen_hf.model_cards` (see setup.py).
"""
