# The zips tools/build_lambdas.py wrote, checked before anything is planned from them: present,
# the ones its manifest describes, built for this architecture and runtime, and (when the
# source directory is given) not older than the source.
locals {
  manifest_path = "${var.dist_dir}/manifest.json"
  manifest      = fileexists(local.manifest_path) ? jsondecode(file(local.manifest_path)) : null

  builds = {
    for function in keys(local.functions) : function => {
      zip      = "${var.dist_dir}/${function}.zip"
      present  = fileexists("${var.dist_dir}/${function}.zip")
      built    = local.manifest == null ? null : lookup(local.manifest.functions, function, null)
      zip_hash = fileexists("${var.dist_dir}/${function}.zip") ? filebase64sha256("${var.dist_dir}/${function}.zip") : null
    }
  }

  # Per function: the source files that changed, appeared or went since its zip was built.
  changed_sources = {
    for function, build in local.builds : function => (
      var.lambda_source_dir == null || build.built == null ? [] : sort(setunion(
        [
          for path, sha in build.built.files : path
          if !fileexists("${var.lambda_source_dir}/${path}") ? true : filesha256("${var.lambda_source_dir}/${path}") != sha
        ],
        setsubtract(
          setunion(["${function}.py", "requirements.txt"], fileset(var.lambda_source_dir, "replication/*.py")),
          keys(build.built.files)
        ),
      ))
    )
  }

  build_errors = {
    for function, build in local.builds : function => compact([
      build.present ? "" : "${build.zip} is missing: run `python tools/build_lambdas.py`.",
      !build.present || local.manifest != null ? "" : "${local.manifest_path} is missing: run `python tools/build_lambdas.py`.",
      !build.present || build.built == null ? "" : (
        build.built.base64sha256 == build.zip_hash ? "" : "${build.zip} is not the zip ${local.manifest_path} describes: run `python tools/build_lambdas.py`."
      ),
      local.manifest == null ? "" : (
        local.manifest.architecture == var.lambda_architecture ? "" : "${build.zip} was built for ${local.manifest.architecture}, not ${var.lambda_architecture}: run `python tools/build_lambdas.py --architecture ${var.lambda_architecture}`."
      ),
      local.manifest == null ? "" : (
        local.manifest.runtime == var.lambda_runtime ? "" : "${build.zip} was built for ${local.manifest.runtime}, not ${var.lambda_runtime}: run `python tools/build_lambdas.py`."
      ),
      length(local.changed_sources[function]) == 0 ? "" : "${build.zip} is stale: ${join(", ", local.changed_sources[function])} changed since it was built; run `python tools/build_lambdas.py`.",
    ])
  }
}
