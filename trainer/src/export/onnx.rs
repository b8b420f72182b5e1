//! The folded network as an ONNX graph (opset 17), written with ONNX's own protobuf types.
//!
//! Position: the last step of export, after BatchNorm folding. burn-onnx's exporter lowers no
//! ELU, comparison or select, which this network needs in 14 places, so the whole graph is
//! written here: one node per operation of `FaceNet::embed`, in the same order.

use crate::model::{FoldedConv, FoldedHead, FoldedNet};
use prost::Message;
use tract_onnx::pb;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::tensor_proto::DataType;

/// The ONNX operator set the graph is written for.
pub const OPSET: i64 = 17;
/// ONNX IR version matching [`OPSET`].
const IR_VERSION: i64 = 8;
/// Name of the graph's input: aligned faces `[N, 3, size, size]`, normalised.
pub const INPUT: &str = "face";
/// Name of the identity feature output `[N, filters]`.
pub const FEATURE: &str = "feature";
/// Name of the sparsified maps output `[N, filters, map, map]`.
pub const MAPS: &str = "maps";
/// The floor under the squared norm in the hypercolumn's L2 normalisation (as TensorFlow's).
const L2_EPSILON: f32 = 1e-12;

fn attr(name: &str, kind: AttributeType) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.to_owned(),
        r#type: kind as i32,
        ..Default::default()
    }
}

fn ints(name: &str, values: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        ints: values.to_vec(),
        ..attr(name, AttributeType::Ints)
    }
}

fn int(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        i: value,
        ..attr(name, AttributeType::Int)
    }
}

fn float(name: &str, value: f32) -> pb::AttributeProto {
    pb::AttributeProto {
        f: value,
        ..attr(name, AttributeType::Float)
    }
}

fn string(name: &str, value: &str) -> pb::AttributeProto {
    pb::AttributeProto {
        s: value.as_bytes().to_vec(),
        ..attr(name, AttributeType::String)
    }
}

fn value_info(name: &str, dims: &[Result<i64, &str>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Ok(n) => Value::DimValue(*n),
                Err(p) => Value::DimParam((*p).to_owned()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: name.to_owned(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Nodes and initialisers, with generated value names.
#[derive(Default)]
struct Graph {
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
}

impl Graph {
    fn floats(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        self.initializers.push(pb::TensorProto {
            name: name.to_owned(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DataType::Float as i32,
            float_data: data.to_vec(),
            ..Default::default()
        });
        name.to_owned()
    }

    fn int64s(&mut self, name: &str, data: &[i64]) -> String {
        self.initializers.push(pb::TensorProto {
            name: name.to_owned(),
            dims: vec![data.len() as i64],
            data_type: DataType::Int64 as i32,
            int64_data: data.to_vec(),
            ..Default::default()
        });
        name.to_owned()
    }

    /// Adds a node named `name` whose outputs are `outputs`; returns the first output.
    fn node_to(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        attribute: Vec<pb::AttributeProto>,
    ) -> String {
        self.nodes.push(pb::NodeProto {
            op_type: op.to_owned(),
            name: name.to_owned(),
            input: inputs.iter().map(|s| (*s).to_owned()).collect(),
            output: outputs.iter().map(|s| (*s).to_owned()).collect(),
            attribute,
            ..Default::default()
        });
        outputs[0].to_owned()
    }

    /// Adds a one-output node whose output is named after the node.
    fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        attribute: Vec<pb::AttributeProto>,
    ) -> String {
        self.node_to(op, name, inputs, &[name], attribute)
    }

    /// Conv with folded bias, then ELU when the layer has one.
    fn conv(&mut self, name: &str, x: &str, c: &FoldedConv) -> String {
        let w = self.floats(
            &format!("{name}.weight"),
            &[c.out_channels, c.in_channels, c.kernel, c.kernel],
            &c.weight,
        );
        let b = self.floats(&format!("{name}.bias"), &[c.out_channels], &c.bias);
        let (k, s, p) = (c.kernel as i64, c.stride as i64, c.pad as i64);
        let y = self.node(
            "Conv",
            &format!("{name}.conv"),
            &[x, &w, &b],
            vec![
                ints("kernel_shape", &[k, k]),
                ints("strides", &[s, s]),
                ints("pads", &[p, p, p, p]),
                ints("dilations", &[1, 1]),
                int("group", 1),
            ],
        );
        if c.elu {
            self.node(
                "Elu",
                &format!("{name}.elu"),
                &[&y],
                vec![float("alpha", 1.0)],
            )
        } else {
            y
        }
    }

    /// Bilinear up-sampling by an integer `factor` (half-pixel centres, as burn without
    /// corner alignment).
    fn upsample(&mut self, name: &str, x: &str, factor: usize) -> String {
        let f = factor as f32;
        let scales = self.floats(&format!("{name}.scales"), &[4], &[1.0, 1.0, f, f]);
        self.node(
            "Resize",
            name,
            &[x, "", &scales],
            vec![
                string("mode", "linear"),
                string("coordinate_transformation_mode", "half_pixel"),
            ],
        )
    }

    /// `x / sqrt(max(sum_c x^2, eps))` over channels.
    fn l2_normalize(&mut self, name: &str, x: &str, eps: &str) -> String {
        let sq = self.node(
            "ReduceSumSquare",
            &format!("{name}.sumsq"),
            &[x],
            vec![ints("axes", &[1]), int("keepdims", 1)],
        );
        let floor = self.node("Max", &format!("{name}.floor"), &[&sq, eps], vec![]);
        let norm = self.node("Sqrt", &format!("{name}.norm"), &[&floor], vec![]);
        self.node("Div", name, &[x, &norm], vec![])
    }
}

/// The hypercolumn, the maps conv and the per-map top-k, ending in [`MAPS`].
fn interpretable_head(
    g: &mut Graph,
    input_size: usize,
    head: &FoldedHead,
    taps: &[String],
    k4_2: &str,
) {
    let (k2_2, k3_2) = (&taps[0], &taps[1]);
    let m = head.map_size;
    let eps = g.floats("l2.epsilon", &[], &[L2_EPSILON]);
    let up3 = g.upsample("head.up3", k3_2, m / (input_size / 8));
    let p3 = g.conv("head.p3", &up3, &head.p3);
    let p3 = g.l2_normalize("head.p3.l2", &p3, &eps);
    let up4 = g.upsample("head.up4", k4_2, m / (input_size / 16));
    let p4 = g.conv("head.p4", &up4, &head.p4);
    let p4 = g.l2_normalize("head.p4.l2", &p4, &eps);
    let k2 = g.l2_normalize("head.k2.l2", k2_2, &eps);
    let hc = g.node(
        "Concat",
        "head.hypercolumn",
        &[&k2, &p3, &p4],
        vec![int("axis", 1)],
    );
    let mut dense = g.conv("head.maps", &hc, &head.conv);
    if let Some(face) = &head.face {
        // Outside the face region the maps are zero before the top-k (model::region).
        let mask = g.floats("head.face_region", &[1, 1, m, m], face);
        dense = g.node("Mul", "head.maps.face", &[&dense, &mask], vec![]);
    }

    // Per-map top-k: keep positions whose |response| exceeds the k-th largest.
    let k = head.top_k.clamp(1, m * m) as i64;
    let magnitude = g.node("Abs", "sparsify.abs", &[&dense], vec![]);
    let flat_shape = g.int64s("sparsify.flat_shape", &[0, 0, -1]);
    let flat = g.node(
        "Reshape",
        "sparsify.flat",
        &[&magnitude, &flat_shape],
        vec![],
    );
    let k_input = g.int64s("sparsify.k", &[k]);
    let top = g.node_to(
        "TopK",
        "sparsify.topk",
        &[&flat, &k_input],
        &["sparsify.topk.values", "sparsify.topk.indices"],
        vec![int("axis", -1), int("largest", 1), int("sorted", 1)],
    );
    let kth = g.node(
        "ReduceMin",
        "sparsify.kth",
        &[&top],
        vec![ints("axes", &[2]), int("keepdims", 1)],
    );
    let last_axis = g.int64s("sparsify.unsqueeze_axes", &[3]);
    let kth = g.node("Unsqueeze", "sparsify.kth4", &[&kth, &last_axis], vec![]);
    let keep = g.node("Greater", "sparsify.keep", &[&magnitude, &kth], vec![]);
    let zero = g.floats("sparsify.zero", &[], &[0.0]);
    g.node_to(
        "Where",
        "sparsify.select",
        &[&keep, &dense, &zero],
        &[MAPS],
        vec![],
    );
}

/// The ONNX model of `net`: input [`INPUT`] with a free batch size, outputs [`FEATURE`] and
/// [`MAPS`]. `doc` is stored as the model's description.
pub fn model(net: &FoldedNet, doc: &str) -> pb::ModelProto {
    let mut g = Graph::default();
    let mut x = INPUT.to_owned();
    let mut taps = Vec::new();
    for (i, layer) in net.encoder.iter().enumerate() {
        x = g.conv(&format!("encoder.{i}"), &x, layer);
        if net.taps.contains(&i) {
            taps.push(x.clone());
        }
    }
    match &net.head {
        Some(head) => interpretable_head(&mut g, net.input_size, head, &taps, &x),
        None => {
            // The base CNN: its maps are k4_2 as they are.
            g.node_to("Identity", "maps.identity", &[&x], &[MAPS], vec![]);
        }
    }
    g.node_to(
        "ReduceMean",
        "feature.pool",
        &[MAPS],
        &[FEATURE],
        vec![ints("axes", &[2, 3]), int("keepdims", 0)],
    );

    let s = net.input_size as i64;
    let (c, m) = (net.feature_dim() as i64, net.map_size() as i64);
    let graph = pb::GraphProto {
        name: "facegate".to_owned(),
        node: g.nodes,
        initializer: g.initializers,
        input: vec![value_info(INPUT, &[Err("N"), Ok(3), Ok(s), Ok(s)])],
        output: vec![
            value_info(FEATURE, &[Err("N"), Ok(c)]),
            value_info(MAPS, &[Err("N"), Ok(c), Ok(m), Ok(m)]),
        ],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "facegate-train".to_owned(),
        producer_version: env!("CARGO_PKG_VERSION").to_owned(),
        doc_string: doc.to_owned(),
        graph: Some(graph),
        ..Default::default()
    }
}

/// The serialised ONNX file of `net`.
pub fn to_bytes(net: &FoldedNet, doc: &str) -> Vec<u8> {
    model(net, doc).encode_to_vec()
}
