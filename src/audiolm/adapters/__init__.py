"""Parameter-efficient adapters (LoRA through PEFT) for any module a task finetunes."""
