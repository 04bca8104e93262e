"""Persona-conditioned regression data: the record contract, persona registries, label sets, views, splits.

The package, by concern (every public name is re-exported here, so `from affectlab.personas import X` works):

| module      | what it holds                                                                              |
|-------------|--------------------------------------------------------------------------------------------|
| `contract`  | records, `LabelSet`, `Persona`, `PersonaRegistry`, validation (`ContractError` names source and row), JSON Lines, `datasets.Features` |
| `presets`   | the medical preset (16 personas, 21 dimensions), the SYNTHETIC PL/EN generator (`medical_scenarios.json`), contracts of registered persona datasets |
| `views`     | persona modes: encoder inputs (`persona_view`, `tokenize_view`), persona tokens, chat messages for LLMs |
| `splits`    | leak-free `random` (grouped by text), `lolo`, `lopo` splits                                |
| `data`      | `PersonaDataArguments` (the data fields both persona families share), loading sources, the split protocol |
| `answers`   | robust parsing and scoring of LLM JSON answers                                              |

A **record** is `{"id", "text", "lang", "persona_id", "labels": {dimension: value}}` plus the optional
`text_id` and `source`; a **persona** is `{"id", "name", "description", "instruction"}`.
"""

from affectlab.personas.answers import answer_scores, parse_answer, score_generations
from affectlab.personas.contract import (ID_PATTERN, LANG_PATTERN, PERSONA_SCHEMA, ContractError,
                                         LabelSet, Persona, PersonaRegistry, answer_schema, check_record,
                                         read_jsonl, record_schema, records_features, records_to_dataset,
                                         validate_records, write_jsonl)
from affectlab.personas.data import (SPLITS, PersonaDataArguments, load_records, prepare_splits,
                                     used_personas)
from affectlab.personas.presets import (MEDICAL_LABEL_SET, MEDICAL_PERSONAS, dataset_contract,
                                        is_persona_dataset, synthetic_medical_records)
from affectlab.personas.splits import SPLIT_NAMES, SPLIT_STRATEGIES, make_splits, split_indices
from affectlab.personas.views import (ENCODER_MODES, GENERIC_SYSTEM, PERSONA_MODES, add_persona_tokens,
                                      chat_messages, encoder_columns, fold_system, format_answer,
                                      instruction_messages, persona_description, persona_token, persona_view,
                                      supports_system_role, tokenize_view)

__all__ = [
    # contract
    "ID_PATTERN", "LANG_PATTERN", "PERSONA_SCHEMA", "ContractError", "LabelSet", "Persona", "PersonaRegistry",
    "answer_schema", "check_record", "read_jsonl", "record_schema", "records_features", "records_to_dataset",
    "validate_records", "write_jsonl",
    # presets
    "MEDICAL_LABEL_SET", "MEDICAL_PERSONAS", "dataset_contract", "is_persona_dataset", "synthetic_medical_records",
    # views
    "ENCODER_MODES", "GENERIC_SYSTEM", "PERSONA_MODES", "add_persona_tokens", "chat_messages", "encoder_columns",
    "fold_system", "format_answer", "instruction_messages", "persona_description", "persona_token", "persona_view",
    "supports_system_role", "tokenize_view",
    # splits
    "SPLIT_NAMES", "SPLIT_STRATEGIES", "make_splits", "split_indices",
    # data
    "SPLITS", "PersonaDataArguments", "load_records", "prepare_splits", "used_personas",
    # answers
    "answer_scores", "parse_answer", "score_generations",
]
