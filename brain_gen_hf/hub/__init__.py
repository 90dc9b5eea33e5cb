"""brain_gen_hf.hub"""
