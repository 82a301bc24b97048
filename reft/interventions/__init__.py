"""The ReFT intervention family: one module per member, one registry (``INTERVENTIONS``)."""

from .base import ALIASES, INTERVENTIONS, Intervention, intervention_class, register_intervention
from .loreft import LoReFT
from .direft import DiReFT
from .noreft import NoReFT
from .ablations import ConsReFT, LobiReFT, OrthDiReFT
from .orthonormal import OrthonormalRows

__all__ = ["ALIASES", "INTERVENTIONS", "Intervention", "intervention_class", "register_intervention",
           "LoReFT", "DiReFT", "NoReFT", "OrthDiReFT", "ConsReFT", "LobiReFT", "OrthonormalRows"]
