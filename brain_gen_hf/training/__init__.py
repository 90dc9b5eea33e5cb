"""brain_gen_hf.training"""
