//! The trainer crate's errors as PostgreSQL ERRORs: one SQLSTATE per kind of mistake, and a hint
//! where the user can do something about it.

use jdsh_trainer::backbone::BackboneError;
use jdsh_trainer::image::ImageError;
use jdsh_trainer::text::TextError;
use jdsh_trainer::{DeviceError, EncodeError, ModelError, TrainError};
use pgrx::PgSqlErrorCode as E;

use crate::fmgr::{raise, raise_with_hint};

/// A model row (or an imported file) that does not load.
pub fn corrupt_model(what: &str, e: ModelError) -> ! {
    raise_with_hint(
        E::ERRCODE_DATA_CORRUPTED,
        format!("{what} cannot be loaded: {e}"),
        "Retrain it with jdsh.train, or import a valid model file with jdsh.import_model.",
    )
}

/// A file given to `jdsh.import_model` that is not a valid model.
pub fn bad_model_file(e: ModelError) -> ! {
    raise_with_hint(
        E::ERRCODE_INVALID_BINARY_REPRESENTATION,
        format!("not a valid jdsh model file: {e}"),
        "Pass the bytes of a .safetensors file written by jdsh-train or jdsh.export_model.",
    )
}

pub fn device(e: DeviceError) -> ! {
    raise_with_hint(
        E::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
        e.to_string(),
        "SET jdsh.device = 'auto' (or 'cpu') to run where libtorch can.",
    )
}

fn text(model: &str, e: TextError) -> ! {
    match e {
        TextError::WrongInput { .. } => {
            raise(E::ERRCODE_DATATYPE_MISMATCH, format!("model \"{model}\": {e}"))
        }
        TextError::WrongDim { .. } | TextError::NotFinite { .. } => {
            raise(E::ERRCODE_DATA_EXCEPTION, format!("model \"{model}\": text {e}"))
        }
        _ => raise(E::ERRCODE_INVALID_PARAMETER_VALUE, format!("text: {e}")),
    }
}

/// An image pipeline failure; `model` names the model (or the function) in the message.
pub fn image(model: &str, e: ImageError) -> ! {
    match e {
        ImageError::Backbone(e) => backbone(model, *e),
        ImageError::BackboneMismatch { .. } => raise_with_hint(
            E::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("model \"{model}\": {e}"),
            "Retrain the model with jdsh.train on this installation.",
        ),
        ImageError::UnknownBackbone { .. } => {
            raise(E::ERRCODE_FEATURE_NOT_SUPPORTED, format!("model \"{model}\": {e}"))
        }
        ImageError::WrongInput { .. } => {
            raise(E::ERRCODE_DATATYPE_MISMATCH, format!("model \"{model}\": {e}"))
        }
        ImageError::UnknownFormat { .. } | ImageError::Decode { .. } | ImageError::BadSize { .. } => {
            raise(E::ERRCODE_INVALID_BINARY_REPRESENTATION, e.to_string())
        }
        ImageError::WrongDim { .. } | ImageError::NotFinite { .. } => {
            raise(E::ERRCODE_DATA_EXCEPTION, format!("model \"{model}\": image {e}"))
        }
        _ => raise(E::ERRCODE_INVALID_PARAMETER_VALUE, format!("image: {e}")),
    }
}

/// The backbone's weights missing, damaged or unreadable: the server cannot compute the features.
fn backbone(model: &str, e: BackboneError) -> ! {
    const HINT: &str =
        "Install the EfficientNet-Lite0 weights with scripts/fetch-backbone.sh (set-up runs it): \
                        they go to the extension's share directory, <sharedir>/extension/jdsh/.";
    match e {
        BackboneError::Image(e) => image(model, e),
        BackboneError::Missing { .. } | BackboneError::NoLocation => {
            raise_with_hint(E::ERRCODE_UNDEFINED_FILE, e.to_string(), HINT)
        }
        BackboneError::Checksum { .. } | BackboneError::Format { .. } => {
            raise_with_hint(E::ERRCODE_DATA_CORRUPTED, e.to_string(), HINT)
        }
        BackboneError::Io { .. } => raise(E::ERRCODE_IO_ERROR, e.to_string()),
        BackboneError::Torch(_) => raise(E::ERRCODE_INTERNAL_ERROR, format!("image backbone: {e}")),
    }
}

/// An encoder failure for model `model`.
pub fn encode(model: &str, e: EncodeError) -> ! {
    match e {
        EncodeError::Text(e) => text(model, e),
        EncodeError::Image(e) => image(model, e),
        EncodeError::Device(e) => device(e),
        EncodeError::WrongInput { .. } => {
            raise(E::ERRCODE_DATATYPE_MISMATCH, format!("model \"{model}\": {e}"))
        }
        EncodeError::NonFinite(_) | EncodeError::Torch(_) => {
            raise(E::ERRCODE_INTERNAL_ERROR, format!("model \"{model}\": {e}"))
        }
    }
}

/// A training failure other than cancellation (handled by the caller, which lets PostgreSQL
/// raise the cancel or timeout error itself).
pub fn train(e: TrainError) -> ! {
    match e {
        TrainError::Cancelled => raise(E::ERRCODE_QUERY_CANCELED, "training was cancelled"),
        TrainError::Empty => raise_with_hint(
            E::ERRCODE_INVALID_PARAMETER_VALUE,
            "the training source returned no rows",
            "Train on a table, view or query with at least a few hundred pairs.",
        ),
        TrainError::TooFewRows { .. } => raise_with_hint(
            E::ERRCODE_INVALID_PARAMETER_VALUE,
            e.to_string(),
            "Add rows, or lower the hold-out fraction with options => '{\"holdout\": 0}'.",
        ),
        TrainError::LabelsRequired { .. } => raise_with_hint(
            E::ERRCODE_INVALID_PARAMETER_VALUE,
            e.to_string(),
            "Pass labels => 'column' (an integer, text or integer[] column), or use method => 'jdsh'.",
        ),
        TrainError::NonFinite { .. } => raise_with_hint(
            E::ERRCODE_DATA_EXCEPTION,
            format!("{e} (rows are counted from 0 in the order the source returned them)"),
            "Filter such rows out, e.g. with a query source.",
        ),
        TrainError::Diverged(..) => raise_with_hint(
            E::ERRCODE_DATA_EXCEPTION,
            e.to_string(),
            "Lower the learning rates, e.g. options => '{\"lr_image\": 0.001, \"lr_text\": 0.001}'.",
        ),
        TrainError::Config(_) | TrainError::BadLabel { .. } => {
            raise(E::ERRCODE_INVALID_PARAMETER_VALUE, e.to_string())
        }
        TrainError::Device(e) => device(e),
        TrainError::Text(e) => text("(training)", e),
        TrainError::Image(e) => image("(training)", e),
        TrainError::LengthMismatch { .. }
        | TrainError::LabelCount { .. }
        | TrainError::Model(_)
        | TrainError::Internal(_) => raise(E::ERRCODE_INTERNAL_ERROR, e.to_string()),
    }
}
