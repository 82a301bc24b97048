"""ReFT: representation finetuning of frozen language models (Wu et al., 2024).

    from reft import ReftConfig, get_reft_model
    reft_model = get_reft_model(model, ReftConfig("loreft", rank=4, layers=[8], positions="l1"))
    reft_model.print_trainable_parameters()
"""

from .config import ReftConfig
from .interventions import INTERVENTIONS, Intervention, register_intervention
from .model import ReftModel, get_reft_model
from .positions import PositionSpec, intervention_locations
from .version import __version__

__all__ = ["ReftConfig", "ReftModel", "get_reft_model", "INTERVENTIONS", "Intervention",
           "register_intervention", "PositionSpec", "intervention_locations", "__version__"]
