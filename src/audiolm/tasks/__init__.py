"""Task families, each a model (nn.Module with inference) and a task (LightningModule that trains it)."""
