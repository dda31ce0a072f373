"""Before the GPU is touched: will this experiment run here, and what will it cost? (`specdeck preflight`)"""
