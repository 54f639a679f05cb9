"""The one error type of the compiler."""
from host_tools.k210 import rules


class CompileError(ValueError):
    """A model the compiler will not turn into a kmodel.

    The message names the source file, the tflite operator index and op, and the rule it breaks, so the user
    knows what to change in the model; nothing is written when this is raised. rule is the id of a
    host_tools.k210.rules rule (given as the Rule or its id).
    """

    def __init__(self, message, source="<tflite>", op_index=None, op=None, rule=None):
        self.source = source
        self.op_index = op_index
        self.op = op
        self.rule = None if rule is None else str(rule)
        where = source
        if op_index is not None:
            where += ": layer %d (%s)" % (op_index, op)
        super().__init__("%s: %s%s" % (where, message, " [rule: %s]" % self.rule if rule else ""))
        self.message = message

    @classmethod
    def internal(cls, e: Exception, source, op_index=None, op=None):
        """An error inside the compiler, as the refusal of the layer it was compiling."""
        return cls("the compiler cannot express this layer (%s: %s)" % (type(e).__name__, e), source, op_index, op,
                   rules.COMPILER)
