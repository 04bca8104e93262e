"""Task families, one module each; `affectlab.registry.TASKS` maps their names to their classes.

| name         | module            | what it trains                                                        |
|--------------|-------------------|-----------------------------------------------------------------------|
| `classifier` | `classification`  | multi-label emotions / single-label sentiment (Trainer, BCE/ASL/CE)   |
| `nli`        | `nli`             | DSM-5 criterion matching as (post, criterion) pairs                   |
| `span-qa`    | `span_qa`         | evidence spans (extractive QA head, striding, n-best, Optuna)         |
| `regression` | `regression`      | persona-conditioned emotion regression (four persona modes, LOLO/LOPO) |
| `sft`        | `sft`             | LLM SFT answering in JSON (TRL SFTTrainer)                            |
"""

from affectlab.registry import TASKS, get_task, register_task  # noqa: F401
