"""The lecture's worked examples, computed step by step and checked against the engines."""

from chainrule.lecture.toy import ACTIVATIONS, ToyGraph, ToyResult, toy_graph, toy_network

__all__ = ["ACTIVATIONS", "ToyGraph", "ToyResult", "toy_graph", "toy_network"]
