# lit configuration for Ingot's text tests. Tool paths come from ctest as --param values.
import lit.formats

config.name = "ingot"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".ir"]
config.test_source_root = os.path.dirname(__file__)
# Temporary files go to the build tree, never next to the sources.
config.test_exec_root = lit_config.params.get("exec_root", os.path.join(os.path.dirname(__file__), "Output"))

params = lit_config.params
config.substitutions.append(("%ingotc", params.get("ingotc", "ingotc")))
config.substitutions.append(("%FileCheck", params.get("filecheck", "FileCheck")))
llvm_bin = params.get("llvm_bin", "/usr/lib/llvm-19/bin")
config.environment["PATH"] = llvm_bin + os.pathsep + config.environment.get("PATH", os.environ.get("PATH", ""))
