"""Collections: dunning policies, episodes and their steps, promises to pay and payment plans."""
