{
  "targets": [
    {
      "target_name": "ar_seg_native",
      "sources": [
        "native/addon/addon.cc",
        "native/addon/creff_binding.cc",
        "native/addon/frame_js.cc",
        "native/addon/head_binding.cc",
        "native/addon/js_args.cc",
        "native/addon/js_errors.cc",
        "native/addon/labels_binding.cc",
        "native/addon/motion_binding.cc",
        "native/addon/packet_reader_binding.cc",
        "native/addon/request_options.cc",
        "native/addon/video_reader_binding.cc",
        "native/creff/creff_cuda_emulator.cc",
        "native/creff/creff_dispatch.cc",
        "native/creff/creff_cuda_stub.cc",
        "native/creff/creff_fused_cpu.cc",
        "native/creff/creff_reference.cc",
        "native/creff/creff_types.cc",
        "native/motion/block_field.cc",
        "native/motion/estimator.cc",
        "native/motion/estimator_reference.cc",
        "native/motion/keyframe_composer.cc",
        "native/motion/reference_resolver.cc",
        "native/motion/resize_field.cc",
        "native/postprocess/logits_to_labels.cc",
        "native/postprocess/pointwise_head.cc",
        "native/video/video_decoder.cc",
        "native/video/fifo_input.cc",
        "native/video/file_reader.cc",
        "native/video/frame_converter.cc",
        "native/video/frame_pipeline.cc",
        "native/video/motion_vectors.cc",
        "native/video/packet_reader.cc",
        "native/video/tensor_resize.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-fopenmp-simd", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-psabi", "<!@(node scripts/libav-flags.js --cflags)"],
      "libraries": ["<!@(node scripts/libav-flags.js --libs)", "-pthread"]
    }
  ]
}
